/** The API group and version of Prepull's resources. */
export const GROUP = 'prepull.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
