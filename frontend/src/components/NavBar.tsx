"use client";
import Link from "next/link";
import { usePathname } from "next/navigation";
import { StatusIndicator } from "./StatusIndicator";

export function NavBar() {
  const path = usePathname();
  const link = (href: string, label: string) => (
    <Link href={href} className={path === href ? "active" : undefined}>
      {label}
    </Link>
  );
  return (
    <header className="topbar">
      <Link href="/" className="brand">
        Munero <span>Analytics</span>
      </Link>
      <nav className="nav">
        {link("/", "Dashboard")}
        {link("/assistant", "Assistant")}
      </nav>
      <div className="spacer" />
      <StatusIndicator />
    </header>
  );
}
