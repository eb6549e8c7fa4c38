import type { ClusterInfo } from './types.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: ClusterInfo;
    /** dist/prepull.mjs, built by the global setup into a directory with no node_modules above it. */
    bundle: string;
  }
}
