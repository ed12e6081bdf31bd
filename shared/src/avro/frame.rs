//! The two schema-registry wire formats Debezium's `AvroConverter` writes to Kafka:
//!
//! - Confluent's: magic byte `0`, the schema id as a 4-byte big-endian integer, then the
//!   Avro binary datum ([Confluent: Wire
//!   format](https://docs.confluent.io/platform/current/schema-registry/fundamentals/serdes-develop/index.html#wire-format)).
//! - AWS Glue Schema Registry's: header version byte `3`, a compression byte (`0` none, `5`
//!   zlib over the whole data part), the 16-byte UUID of the schema version, then the datum
//!   (`AWSSchemaRegistryConstants`, awslabs/aws-glue-schema-registry; the schema is fetched
//!   with Glue's `GetSchemaVersion(SchemaVersionId)`).

use std::borrow::Cow;
use std::fmt;
use std::io::Read;

use super::AvroError;

/// Where a frame's schema is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaRef {
    /// A Confluent-compatible registry's schema id (`GET /schemas/ids/{id}`).
    Confluent(u32),
    /// An AWS Glue Schema Registry schema version id (a UUID).
    Glue([u8; 16]),
}

impl SchemaRef {
    /// A schema id as the registries write it: Confluent's decimal id (`42`), or a Glue schema
    /// version id, a UUID in its 8-4-4-4-12 form. `None` for anything else.
    pub fn from_id(id: &str) -> Option<SchemaRef> {
        if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
            return id.parse().ok().map(SchemaRef::Confluent);
        }
        uuid::Uuid::try_parse(id).ok().filter(|_| id.len() == 36).map(|u| SchemaRef::Glue(*u.as_bytes()))
    }
}

impl fmt::Display for SchemaRef {
    /// `confluent:42`, or `glue:` and the UUID in its 8-4-4-4-12 form: ids, never data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaRef::Confluent(id) => write!(f, "confluent:{id}"),
            SchemaRef::Glue(uuid) => {
                f.write_str("glue:")?;
                for (i, byte) in uuid.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// A frame's schema and its datum (inflated when the frame was compressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Whose schema decodes the datum.
    pub schema: SchemaRef,
    /// The Avro binary datum.
    pub datum: Cow<'a, [u8]>,
}

/// Glue's header version byte.
const GLUE_HEADER_VERSION: u8 = 3;
/// Glue's compression bytes: none, zlib.
const GLUE_UNCOMPRESSED: u8 = 0;
const GLUE_ZLIB: u8 = 5;
/// The largest datum a zlib frame may inflate to: Lambda's 6 MB invocation bounds what
/// arrives, and a bomb must not take the function's memory.
const MAX_INFLATED: u64 = 64 * 1024 * 1024;

/// Whether `bytes` open with a whole header of either registry's framing. Neither first byte
/// can open JSON text, so no JSON message is taken for a frame; bytes too short for a header
/// are no frame (and no JSON either).
pub fn is_frame(bytes: &[u8]) -> bool {
    schema_of(bytes).is_some()
}

/// A frame of `datum` under `schema`, as the registries' serializers write it (a Glue frame
/// uncompressed): the inverse of [`parse`], for the project's generator.
pub fn write(schema: SchemaRef, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(18 + datum.len());
    match schema {
        SchemaRef::Confluent(id) => {
            out.push(0);
            out.extend_from_slice(&id.to_be_bytes());
        }
        SchemaRef::Glue(uuid) => {
            out.extend_from_slice(&[GLUE_HEADER_VERSION, GLUE_UNCOMPRESSED]);
            out.extend_from_slice(&uuid);
        }
    }
    out.extend_from_slice(datum);
    out
}

/// The schema a frame names, read from its header alone (no inflating): `None` when `bytes`
/// are no whole header ([`is_frame`]).
pub fn schema_of(bytes: &[u8]) -> Option<SchemaRef> {
    match bytes {
        [0, a, b, c, d, ..] => Some(SchemaRef::Confluent(u32::from_be_bytes([*a, *b, *c, *d]))),
        [GLUE_HEADER_VERSION, GLUE_UNCOMPRESSED | GLUE_ZLIB, rest @ ..] => {
            rest.first_chunk::<16>().map(|uuid| SchemaRef::Glue(*uuid))
        }
        _ => None,
    }
}

/// The frame in `bytes`. Errors ([`AvroError::Frame`], [`AvroError::Compression`]): a header
/// cut short, an unknown header or compression byte, zlib data that does not inflate (or
/// inflates past 64 MiB).
pub fn parse(bytes: &[u8]) -> Result<Frame<'_>, AvroError> {
    match bytes {
        [0, a, b, c, d, datum @ ..] => Ok(Frame {
            schema: SchemaRef::Confluent(u32::from_be_bytes([*a, *b, *c, *d])),
            datum: Cow::Borrowed(datum),
        }),
        [0, ..] => Err(AvroError::Frame("a Confluent frame shorter than its 5-byte header")),
        [GLUE_HEADER_VERSION, compression, rest @ ..] => {
            let Some((uuid, data)) = rest.split_first_chunk::<16>() else {
                return Err(AvroError::Frame("a Glue frame shorter than its 18-byte header"));
            };
            let datum = match *compression {
                GLUE_UNCOMPRESSED => Cow::Borrowed(data),
                GLUE_ZLIB => {
                    let mut out = Vec::new();
                    flate2::read::ZlibDecoder::new(data)
                        .take(MAX_INFLATED + 1)
                        .read_to_end(&mut out)
                        .map_err(|_| AvroError::Compression)?;
                    if out.len() as u64 > MAX_INFLATED {
                        return Err(AvroError::Compression);
                    }
                    Cow::Owned(out)
                }
                _ => return Err(AvroError::Frame("a Glue frame with an unknown compression byte")),
            };
            Ok(Frame { schema: SchemaRef::Glue(*uuid), datum })
        }
        _ => Err(AvroError::Frame("neither a Confluent (0) nor a Glue (3) header")),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn confluent_frames_carry_a_big_endian_id() {
        let frame = parse(&[0, 0, 0, 1, 2, 9, 8]).unwrap();
        assert_eq!(frame.schema, SchemaRef::Confluent(258));
        assert_eq!(&*frame.datum, &[9, 8]);
        assert_eq!(frame.schema.to_string(), "confluent:258");
        assert_eq!(schema_of(&[0, 0, 0, 1, 2]), Some(SchemaRef::Confluent(258)));
        assert_eq!(write(SchemaRef::Confluent(258), &[9, 8]), [0, 0, 0, 1, 2, 9, 8]);
        assert_eq!(schema_of(&[0, 0, 0, 1]), None);
        assert_eq!(
            parse(&[0, 0, 0, 1]).unwrap_err(),
            AvroError::Frame("a Confluent frame shorter than its 5-byte header")
        );
    }

    #[test]
    fn glue_frames_carry_a_uuid_and_may_be_zlib_compressed() {
        let uuid: [u8; 16] = *b"\x12\x34\x56\x78\x9a\xbc\xde\xf0\x01\x23\x45\x67\x89\xab\xcd\xef";
        let mut plain = vec![3, 0];
        plain.extend(uuid);
        plain.extend([7, 7, 7]);
        let frame = parse(&plain).unwrap();
        assert_eq!((frame.schema, &*frame.datum), (SchemaRef::Glue(uuid), &[7u8, 7, 7][..]));
        assert_eq!(frame.schema.to_string(), "glue:12345678-9abc-def0-0123-456789abcdef");
        assert_eq!(schema_of(&plain), Some(SchemaRef::Glue(uuid)));
        assert_eq!(SchemaRef::from_id("12345678-9abc-def0-0123-456789abcdef"), Some(SchemaRef::Glue(uuid)));
        assert_eq!(SchemaRef::from_id("258"), Some(SchemaRef::Confluent(258)));
        for bad in ["", "1234-5678", "123456789abcdef00123456789abcdef", "99999999999", "-1"] {
            assert_eq!(SchemaRef::from_id(bad), None, "{bad}");
        }
        assert_eq!(write(SchemaRef::Glue(uuid), &[7, 7, 7]), plain);
        assert_eq!(schema_of(&plain[..17]), None, "a UUID cut short");
        assert_eq!(schema_of(&[3, 9, 0, 0]), None, "an unknown compression byte");

        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&[1, 2, 3, 4]).unwrap();
        let mut compressed = vec![3, 5];
        compressed.extend(uuid);
        compressed.extend(z.finish().unwrap());
        assert_eq!(&*parse(&compressed).unwrap().datum, &[1, 2, 3, 4]);

        let mut broken = vec![3, 5];
        broken.extend(uuid);
        broken.extend([0xde, 0xad]);
        assert_eq!(parse(&broken).unwrap_err(), AvroError::Compression);
        let mut unknown = vec![3, 9];
        unknown.extend(uuid);
        assert!(matches!(parse(&unknown), Err(AvroError::Frame(_))));
        assert!(matches!(parse(&[3, 0, 1, 2]), Err(AvroError::Frame(_))));
    }

    #[test]
    fn a_zlib_bomb_is_refused() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..65 {
            z.write_all(&zeros).unwrap();
        }
        let mut frame = vec![3, 5];
        frame.extend([0u8; 16]);
        frame.extend(z.finish().unwrap());
        assert!(frame.len() < 1 << 20, "a small frame");
        assert_eq!(parse(&frame).unwrap_err(), AvroError::Compression);
    }
}
