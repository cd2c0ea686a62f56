import { Initial1763900000000 } from './1763900000000-initial.js';
import { HostPool1764000000000 } from './1764000000000-host-pool.js';

/** Every migration, oldest first. */
export const migrations = [Initial1763900000000, HostPool1764000000000];
