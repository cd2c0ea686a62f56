import { Initial1763900000000 } from './1763900000000-initial.js';

/** Every migration, oldest first. */
export const migrations = [Initial1763900000000];
