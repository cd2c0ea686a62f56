/** Types of scripts/build-admin.mjs for the tests that import it. */
export declare const ADMIN_GZIP_BUDGET: number;
export declare const ADMIN_OUT: string;
export interface GzippedSizes {
  files: Record<string, number>;
  total: number;
}
export declare function gzippedSizes(dir?: string): GzippedSizes;
export declare function buildAdmin(options?: { quiet?: boolean }): Promise<GzippedSizes>;
