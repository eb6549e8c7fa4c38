/**
 * Indexes that link one kind to another, kept below both kinds so that
 * neither folder imports the other: a PrePulledImage names RegistryCredentials
 * in spec.registryCredentials, which makes its namespace a target of theirs
 * and puts their copies in its pods' imagePullSecrets.
 */
import type { PrePulledImage } from '../api/prepulledimage.ts';
import type { Informer } from '../kube/informer.ts';

/** PrePulledImages by the RegistryCredential names in spec.registryCredentials. */
export const CREDENTIAL_REFERENCE_INDEX = 'registrycredential-references';

/** Adds {@link CREDENTIAL_REFERENCE_INDEX}; call once, before or after the informer starts. */
export function addCredentialReferenceIndex(prePulledImages: Informer<PrePulledImage>): void {
  prePulledImages.addIndex(CREDENTIAL_REFERENCE_INDEX, (ppi) =>
    (ppi.spec.registryCredentials ?? []).map((ref) => ref.name),
  );
}

/** The PrePulledImages that name the RegistryCredential `name`. */
export function prePulledImagesNaming(
  prePulledImages: Informer<PrePulledImage>,
  name: string,
): PrePulledImage[] {
  return prePulledImages.byIndex(CREDENTIAL_REFERENCE_INDEX, name);
}
