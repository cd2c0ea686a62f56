// Raw-HTTP helpers for emulator tests: what the ollama client hides (status lines, content types,
// exact NDJSON lines) is read straight off the wire here.

export interface RawReply {
  status: number;
  contentType: string | null;
  text: string;
  /** Each NDJSON line parsed (or the single JSON body as one element). */
  objects: Array<Record<string, unknown>>;
}

export async function raw(base: string, method: string, path: string, body?: unknown): Promise<RawReply> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? undefined : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  const objects = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  return { status: res.status, contentType: res.headers.get('content-type'), text, objects };
}

export const post = (base: string, path: string, body?: unknown) => raw(base, 'POST', path, body);

/** Catch an async failure and hand it back for assertions on name / status_code / message. */
export async function failure(p: Promise<unknown> | (() => Promise<unknown>)): Promise<Error & { status_code?: number; error?: string }> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err as Error & { status_code?: number };
  }
  throw new Error('expected a failure, but it succeeded');
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
