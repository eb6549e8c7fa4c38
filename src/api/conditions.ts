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
  /** A write of the controller's was refused by the API server: schema, CEL, admission (400, 422). */
  Rejected: 'Rejected',
  /** The API server could not be reached or failed (5xx, timeouts); retried with back-off. */
  ApiUnavailable: 'ApiUnavailable',
  /** Any other failure of a reconcile step; retried with back-off. */
  ReconcileFailed: 'ReconcileFailed',
  Reconciled: 'Reconciled',
  Progressing: 'Progressing',
  AllNodesReady: 'AllNodesReady',
  NoMatchingNodes: 'NoMatchingNodes',
  NodesFailing: 'NodesFailing',
  /** The cluster refuses to create puller pods: PodSecurity, a missing PriorityClass, a ResourceQuota. */
  PodsRefused: 'PodsRefused',
  /** spec.priorityClassName names a class the operator does not allow for puller pods (value above 0). */
  PriorityClassNotAllowed: 'PriorityClassNotAllowed',
  /** spec.images is empty and spec.imagesFrom selects no workload with an image: nothing to pull. */
  NoImages: 'NoImages',
  // Per node and image.
  Pulling: 'Pulling',
  Pending: 'Pending',
  ErrImagePull: 'ErrImagePull',
  ImagePullBackOff: 'ImagePullBackOff',
  ErrImageNeverPull: 'ErrImageNeverPull',
  Unauthorized: 'Unauthorized',
  NotFound: 'NotFound',
  PlatformMismatch: 'PlatformMismatch',
  /** The registry could not be asked: timeout, refused connection, TLS failure, 5xx, or 429 past the retries. */
  RegistryUnavailable: 'RegistryUnavailable',
  /** The registry answered with something Prepull cannot use (an unknown media type, a malformed manifest). */
  InvalidRegistryResponse: 'InvalidRegistryResponse',
  InvalidImageName: 'InvalidImageName',
  Importing: 'Importing',
  ImportFailed: 'ImportFailed',
  ChecksumMismatch: 'ChecksumMismatch',
  DownloadFailed: 'DownloadFailed',
  ImageNotInArchive: 'ImageNotInArchive',
  RuntimeNotFound: 'RuntimeNotFound',
  // Import refusals (the importer's result reasons, src/agent/importer/reasons.go).
  /** The cluster's import policy (src/image/import-policy.ts) does not let this namespace import the image from that source. */
  ImportNotAllowed: 'ImportNotAllowed',
  /**
   * The image is on the node, but the kubelet will not start it for the puller
   * pod: it was pulled there before with credentials the pod does not have
   * (Kubernetes 1.35+ image pull credential verification).
   */
  CredentialsNotVerified: 'CredentialsNotVerified',
  /** No node agent pod runs on the node, so nothing imports its tarballs. */
  AgentMissing: 'AgentMissing',
  /** The name is held in containerd by an image Prepull did not import (or imported for another owner). */
  ImportConflict: 'ImportConflict',
  /** The name pins an `@sha256:` digest that is not the archive image's. */
  DigestMismatch: 'DigestMismatch',
  /** A plain `http://` tarball URL without `sha256`. */
  ChecksumRequired: 'ChecksumRequired',
  /**
   * A url source's tarball.credentialsSecretRef gives no credential: the Secret
   * does not exist, has neither username/password nor token, or its copy for the
   * node agents is not there yet.
   */
  CredentialsUnavailable: 'CredentialsUnavailable',
  /** A download redirected from https to http, or too many times. */
  RedirectRefused: 'RedirectRefused',
  /** A download larger than the importer's size cap. */
  DownloadTooLarge: 'DownloadTooLarge',
  /** An archive larger than the cap on what one archive may write into the content store. */
  ArchiveTooLarge: 'ArchiveTooLarge',
  /** An archive path with a `..` segment, or one that leaves its volume. */
  PathRefused: 'PathRefused',
  /** The archive is a FIFO, device, socket or directory. */
  NotRegularFile: 'NotRegularFile',
  DiskPressure: 'DiskPressure',
  /** Event: a node's failed import runs again (its puller pod is recreated). */
  RetryingImport: 'RetryingImport',
  /** Event: a refresh round began (spec.refresh.interval). */
  Refreshing: 'Refreshing',
  /** Event: the registry serves another digest for a tag than it did at the last check. */
  TagMoved: 'TagMoved',
  // RegistryCredential.
  AllNamespacesSynced: 'AllNamespacesSynced',
  /** Event: the secret reached every target namespace. */
  Synced: 'Synced',
  /** A secret of the copy's name exists and is not this RegistryCredential's. */
  Conflict: 'Conflict',
  SourceNotFound: 'SourceNotFound',
  SourceInvalid: 'SourceInvalid',
  /** RBAC, a ResourceQuota or an admission plugin refused a write or a read (403). */
  Forbidden: 'Forbidden',
  /** A write to one namespace failed for another reason; retried with backoff. */
  SyncFailed: 'SyncFailed',
  // RegistryCredential: the pull secret added to new pods at admission (#17).
  /** Its MutatingAdmissionPolicies and bindings are in place. */
  AdmissionPolicyReady: 'AdmissionPolicyReady',
  /** The cluster does not serve admissionregistration.k8s.io/v1 MutatingAdmissionPolicy. */
  AdmissionPolicyUnsupported: 'AdmissionPolicyUnsupported',
  /** The operator runs with admission policies turned off. */
  AdmissionPolicyDisabled: 'AdmissionPolicyDisabled',
  /** The API server refused a policy or binding (403 is Forbidden). */
  AdmissionPolicyFailed: 'AdmissionPolicyFailed',
  // PrePulledImage: its spec.imagePullSecrets and spec.registryCredentials (#17, #12).
  /** Every pull secret and RegistryCredential named exists (and serves this namespace). */
  CredentialsResolved: 'CredentialsResolved',
  /** An entry of spec.imagePullSecrets is no secret in the namespace. */
  PullSecretNotFound: 'PullSecretNotFound',
  /** A name in spec.registryCredentials is no RegistryCredential. */
  RegistryCredentialNotFound: 'RegistryCredentialNotFound',
  /** The RegistryCredential's target.allowRequestsFrom does not select this namespace. */
  RegistryCredentialNotAllowed: 'RegistryCredentialNotAllowed',
  // RegistryMirror (#15): per node, as the node agent reports it, and for the object.
  /** The node's hosts.toml for the host is Prepull's and current. */
  Applied: 'Applied',
  /** Event: every selected node has the mirror. */
  MirrorsApplied: 'MirrorsApplied',
  AllNodesApplied: 'AllNodesApplied',
  /** containerd's config has no registry config_path: hosts.toml files are ignored. */
  ConfigPathNotSet: 'ConfigPathNotSet',
  /** config_path lists several directories, which containerd 2.1+'s transfer-service pull reads as one name. */
  ConfigPathListUnread: 'ConfigPathListUnread',
  /** Inline registry.mirrors/configs in containerd's config, which config_path cannot be combined with. */
  InlineMirrorsConflict: 'InlineMirrorsConflict',
  /** The node's runtime reads its registry settings elsewhere (k3s, rke2: registries.yaml). */
  Unsupported: 'Unsupported',
  /** No containerd config file was found on the node. */
  RuntimeConfigNotFound: 'RuntimeConfigNotFound',
  /** containerd's config file is not TOML Prepull can read. */
  RuntimeConfigInvalid: 'RuntimeConfigInvalid',
  /** Another RegistryMirror for the same host selects the node and is older. */
  HostClaimed: 'HostClaimed',
  /** Writing or removing a file on the node failed. */
  WriteFailed: 'WriteFailed',
  /** The node's agent has not reported this generation (not running yet, or unreachable). */
  AgentPending: 'AgentPending',
  // RegistryCredential spec.nodes (#15): the kubelet's config.json on each selected node.
  /** The kubelet's config.json is not a JSON object Prepull can merge into; it is left alone. */
  ConfigInvalid: 'ConfigInvalid',
  /** The agent's kubelet root directory has no pods/: not where this node's kubelet keeps its files. */
  KubeletRootNotFound: 'KubeletRootNotFound',
  /** Every selected node's config.json has the credentials. */
  AllNodesCredentialed: 'AllNodesCredentialed',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];
