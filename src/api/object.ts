/**
 * The shape every Kubernetes object shares, as plain JSON: metadata, and a
 * spec and status of known shapes. Defined here so that the API schemas stand
 * alone; src/kube re-exports it. Types only.
 */

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: unknown[];
}

/** Any object: apiVersion, kind, metadata, and whatever else it carries. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** An object with a `spec` and a `status` of known shapes. */
export interface Resource<Spec, Status> extends KubeObject {
  spec: Spec;
  status?: Status;
}
