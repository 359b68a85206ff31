import { Assistant } from "@/components/Assistant";

export const metadata = { title: "Assistant · Munero Analytics" };

export default function AssistantPage() {
  return <Assistant />;
}
