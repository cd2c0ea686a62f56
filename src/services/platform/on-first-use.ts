/**
 * A memoised loader: `load` runs on the first call and its promise is shared by every later
 * call. Rarely used parts of the gateway (GraphiQL's page, the REST APIs, CSV, Redis, PostgreSQL,
 * JSON Schema validation) are imported through one, so an idle gateway does not hold their code
 * (docs/performance.md, "Idle memory"). A failed load is forgotten, so the next call tries again.
 */
export function onFirstUse<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () =>
    (loading ??= load().catch((err: unknown) => {
      loading = undefined;
      throw err;
    }));
}
