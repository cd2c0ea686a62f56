import { Initial1763900000000 } from './1763900000000-initial.js';
import { HostPool1764000000000 } from './1764000000000-host-pool.js';
import { ShortKeyPrefix1765000000000 } from './1765000000000-short-key-prefix.js';
import { ModernOllama1766000000000 } from './1766000000000-modern-ollama.js';

/** Every migration, oldest first. */
export const migrations = [Initial1763900000000, HostPool1764000000000, ShortKeyPrefix1765000000000, ModernOllama1766000000000];
