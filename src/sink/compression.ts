/**
 * KAFKA_COMPRESSION -> the kafkajs codec. gzip is built into kafkajs; snappy comes from
 * `kafkajs-snappy` (pure JavaScript, installs from the npm registry alone). lz4 and zstd are not
 * offered: their kafkajs codecs need native addons that build or download binaries at install time.
 */
import kafkajs from 'kafkajs';
import SnappyCodec from 'kafkajs-snappy';

// CompressionCodecs is not a named export Node can see in kafkajs' CommonJS module: take it from the default.
const { CompressionCodecs, CompressionTypes } = kafkajs;
type CompressionTypes = kafkajs.CompressionTypes;

export const COMPRESSIONS = ['none', 'gzip', 'snappy'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/** The kafkajs compression type for a setting; registers the codec it needs (once). */
export function compressionType(compression: Compression): CompressionTypes {
  switch (compression) {
    case 'none':
      return CompressionTypes.None;
    case 'gzip':
      return CompressionTypes.GZIP;
    case 'snappy':
      CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
      return CompressionTypes.Snappy;
  }
}
