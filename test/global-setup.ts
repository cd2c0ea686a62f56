// Builds the admin console once per run (esbuild, well under a second) so tests serve the
// current admin/ sources from dist/admin, as `npm start` does after `npm run build`.
import { buildAdmin } from '../scripts/build-admin.mjs';

export default async function setup(): Promise<void> {
  await buildAdmin({ quiet: true });
}
