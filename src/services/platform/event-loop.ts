/** Resolves after the event loop has had a turn (I/O, timers, other streams). */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
