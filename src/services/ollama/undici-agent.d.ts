// undici's Agent on its own: the package index also loads fetch, WebSocket, EventSource, the
// cache and mock dispatchers (110 files, about 4 MiB of the gateway's idle memory); the Agent
// with its HTTP/1 client is 23 of them. undici is pinned exactly in package.json for this path.
declare module 'undici/lib/dispatcher/agent.js' {
  import type { Agent } from 'undici';
  const AgentClass: typeof Agent;
  export default AgentClass;
}
