/** @type {import('next').NextConfig} */
const nextConfig = {
  output: "standalone",
  reactStrictMode: true,
  poweredByHeader: false,
  // FastAPI serves /api/chat/ with a trailing slash; keep paths as written.
  skipTrailingSlashRedirect: true,
};

export default nextConfig;
