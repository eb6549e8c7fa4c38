/**
 * Condition types and reasons: one small file of CamelCase constants. Callers
 * branch on these, never on message text.
 */

export const ConditionType = {
  Ready: 'Ready',
  Progressing: 'Progressing',
  Degraded: 'Degraded',
  Reconciling: 'Reconciling',
  Stalled: 'Stalled',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

export const Reason = {
  // Whole-object outcomes.
  InvalidSpec: 'InvalidSpec',
  Reconciled: 'Reconciled',
  Progressing: 'Progressing',
  AllNodesReady: 'AllNodesReady',
  NoMatchingNodes: 'NoMatchingNodes',
  NodesFailing: 'NodesFailing',
  // Per node and image.
  Pulling: 'Pulling',
  Pending: 'Pending',
  ErrImagePull: 'ErrImagePull',
  ImagePullBackOff: 'ImagePullBackOff',
  ErrImageNeverPull: 'ErrImageNeverPull',
  Unauthorized: 'Unauthorized',
  NotFound: 'NotFound',
  PlatformMismatch: 'PlatformMismatch',
  InvalidImageName: 'InvalidImageName',
  ImportFailed: 'ImportFailed',
  ChecksumMismatch: 'ChecksumMismatch',
  DiskPressure: 'DiskPressure',
  // RegistryCredential.
  AllNamespacesSynced: 'AllNamespacesSynced',
  Conflict: 'Conflict',
  SourceNotFound: 'SourceNotFound',
  SourceInvalid: 'SourceInvalid',
  Forbidden: 'Forbidden',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];
