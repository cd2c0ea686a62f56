import v8 from 'node:v8';

/**
 * Keeps V8's young generation at its initial size while the gateway starts.
 *
 * Start-up (loading a few thousand modules, building the schema, migrations) allocates a lot of
 * short-lived memory in a burst, and V8 answers that by doubling the young generation's
 * semi-spaces up to their maximum (16 MiB each on 64-bit). An idle process never gives that back:
 * the semi-spaces are only shrunk after a garbage collection, and an idle process has none. That
 * was about 30 MiB of the gateway's idle RSS (issue 16), for a burst that happens once.
 *
 * So growth is switched off (a factor of 1) until the server listens, and then set back to V8's
 * default of 2, so that under load the young generation grows as V8 decides. V8 reads the factor
 * each time it considers growing the new space (src/heap/new-spaces.cc, SemiSpaceNewSpace::Grow:
 * `v8_flags.semi_space_growth_factor * TotalCapacity()`), and Node leaves V8's flags writable
 * after start, so setting it at run time takes effect.
 *
 * The only static import of src/main.ts, so that it runs before the rest of the gateway is parsed.
 */
const V8_DEFAULT_GROWTH_FACTOR = 2;

v8.setFlagsFromString('--semi-space-growth-factor=1');

/** After start: the young generation may grow again. */
export function releaseYoungGeneration(): void {
  v8.setFlagsFromString(`--semi-space-growth-factor=${V8_DEFAULT_GROWTH_FACTOR}`);
}
