import type { TestGateway } from './gateway.js';

/** Milliseconds between tokens while paced: a fast real model's pace is 5–30 ms per token. */
export const PACED_TOKEN_DELAY_MS = 5;

/**
 * Runs `fn` with the emulator sending its tokens paced, as Ollama sends each token when it is
 * produced. For tests that check a stream's shape (several events, thinking before the answer):
 * with no delay at all a short reply arrives in one burst, and the gateway may coalesce it into one
 * event by design (chunks that arrive while the previous event, or the reservation's commit, is
 * being waited for go out together).
 */
export async function pacedLikeAModel<T>(gw: TestGateway, fn: () => Promise<T>): Promise<T> {
  gw.emulator.setTokenDelay(PACED_TOKEN_DELAY_MS);
  try {
    return await fn();
  } finally {
    gw.emulator.setTokenDelay(0);
  }
}
