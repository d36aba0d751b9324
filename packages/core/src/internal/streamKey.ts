/**
 * @internal One string per stream of a tenant, for maps keyed by stream: each part's length keeps "a/b"+"c" and
 * "a"+"b/c" apart.
 */
export const streamKey = (
  tenantId: string,
  stream: { readonly streamType: string; readonly streamId: string }
): string => `${tenantId.length}:${tenantId}/${stream.streamType.length}:${stream.streamType}/${stream.streamId}`
