import v8 from 'node:v8';

/**
 * WebAssembly stays on V8's baseline compiler (Liftoff), never tiered up to TurboFan.
 *
 * The only WebAssembly in the gateway is undici's HTTP parser (llhttp), which parses every answer
 * from Ollama. With V8's default tiering, about a second after the first request to Ollama (the
 * first health check, typically) a background thread compiled it again with TurboFan, and the
 * gateway's RSS grew by about 9 MiB for good, more than a tenth of an idle gateway (issue 16's
 * target is under 100 MiB). Liftoff's code is slower in principle, but llhttp's share of a token
 * is small: in a client-only comparison (the `ollama` client on this transport, 120,000 tokens
 * from the emulator, three runs each) CPU per token was 2.4–3.2 µs with Liftoff only and
 * 2.9–3.3 µs with tiering, which also spends CPU on the compile.
 *
 * A static import of src/main.ts: flags must be set before undici compiles the parser, which it
 * does at its first connection.
 */
v8.setFlagsFromString('--liftoff-only');
