// Forwards /api/* and /health to the backend when no reverse proxy sits in front (local work,
// end-to-end tests). Behind Caddy these paths never reach the frontend. Read at run time, so a
// built image or standalone server can be pointed anywhere with BACKEND_URL.
import { NextResponse, type NextRequest } from "next/server";

export const config = {
  matcher: ["/api/:path*", "/health"],
  runtime: "nodejs",
};

export function middleware(req: NextRequest) {
  const backend = process.env.BACKEND_URL || "http://127.0.0.1:8000";
  const target = new URL(req.nextUrl.pathname + req.nextUrl.search, backend);
  return NextResponse.rewrite(target);
}
