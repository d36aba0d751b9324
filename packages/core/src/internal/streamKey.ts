/** @internal One string per stream, for maps keyed by stream: the type's length keeps "a/b"+"c" and "a"+"b/c" apart. */
export const streamKey = (stream: { readonly streamType: string; readonly streamId: string }): string =>
  `${stream.streamType.length}:${stream.streamType}/${stream.streamId}`
