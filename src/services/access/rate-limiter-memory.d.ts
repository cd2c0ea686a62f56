// The in-memory limiter on its own: rate-limiter-flexible's index loads every store it supports
// (Mongo, MySQL, Postgres, DynamoDB, Etcd, ...), about 1 MiB of heap the gateway never uses.
declare module 'rate-limiter-flexible/lib/RateLimiterMemory.js' {
  import type { RateLimiterMemory } from 'rate-limiter-flexible';
  const RateLimiterMemoryClass: typeof RateLimiterMemory;
  export default RateLimiterMemoryClass;
}
