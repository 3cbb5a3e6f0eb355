# Sourced by the scripts beside it. Waits until the server on port $1 answers /health, then
# prints the request header its load is sent with: If-None-Match of product 1's current
# ETag (a 304), or, with GET200 set, a header that changes nothing (a 200 with the body).
load_header() {
  local port=$1 etag
  for _ in $(seq 300); do curl -s -o /dev/null "localhost:$port/health" && break; sleep 0.2; done
  etag=$(curl -si "localhost:$port/products/1" | grep -i '^etag:' | cut -d' ' -f2 | tr -d '\r')
  if [ -n "${GET200:-}" ]; then echo "X-Nothing: 1"; else echo "If-None-Match: $etag"; fi
}
