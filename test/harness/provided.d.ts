import type { ReleaseImage } from './images.ts';
import type { ClusterInfo } from './types.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: ClusterInfo;
    /** dist/prepull.mjs, built by the global setup into a directory with no node_modules above it. */
    bundle: string;
    /** The Prepull image (scripts/build-image.sh), as the real node holds it. */
    image: ReleaseImage;
  }
}
