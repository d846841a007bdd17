//! The protobuf codec of the generated service: prost's, except that
//!
//! - a request that is not a valid protobuf message is INVALID_ARGUMENT rather than tonic's
//!   INTERNAL. The gRPC status-code table files request parse failures under INTERNAL, but here the
//!   fault is the client's, and the service promises that nothing a client sends is answered like a
//!   server failure;
//! - a request whose facts give a fact id twice (a map key repeated in the `google.protobuf.Struct`,
//!   which prost would collapse, last one winning) is INVALID_ARGUMENT naming `facts.<id>`: see
//!   [`super::duplicate_facts`]. This runs while the request is decoded, so before the method
//!   checks the caller's key, as for any other malformed request;
//! - a request that gives a singular field twice (prost keeps the last, silently), or two members
//!   of one `oneof`, is INVALID_ARGUMENT naming it: see [`super::singular_fields`].

use std::marker::PhantomData;

use prost::bytes::Buf;
use prost::{Message, Name};
use protocol_engine::RequestError;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

use super::duplicate_facts::{Malformed, duplicate_facts, facts_at};
use super::singular_fields::duplicate_fields;

/// Used by the generated server and client code (`codec_path` in build.rs).
#[derive(Debug, Clone)]
pub struct StrictCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for StrictCodec<T, U> {
    fn default() -> Self {
        Self { _pd: PhantomData }
    }
}

impl<T, U> Codec for StrictCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Name + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = StrictDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        StrictDecoder(ProstDecoder::new(BufferSettings::default()))
    }
}

/// prost's decoder with parse failures reported as the client's fault, and facts given twice
/// refused.
#[derive(Debug)]
pub struct StrictDecoder<U>(ProstDecoder<U>);

fn not_protobuf(detail: &str) -> Status {
    Status::invalid_argument(format!(
        "the message is not a valid protobuf encoding of the request: {detail}"
    ))
}

impl<U: Message + Default + Name + 'static> Decoder for StrictDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        // The whole message is buffered: taking it is a split of the buffer, not a copy.
        let bytes = buf.copy_to_bytes(buf.remaining());
        let message = U::decode(bytes.clone()).map_err(|e| not_protobuf(&e.to_string()))?;
        let mut violations = duplicate_fields(&bytes, &format!(".{}", U::full_name()))
            .map_err(|_| not_protobuf("its fields could not be walked"))?;
        if let Some(at) = facts_at::<U>() {
            match duplicate_facts(&bytes, at) {
                Ok(facts) => violations.extend(facts),
                Err(Malformed) => return Err(not_protobuf("its fields could not be walked")),
            }
        }
        if violations.is_empty() {
            Ok(Some(message))
        } else {
            Err(super::status::invalid(RequestError { violations }))
        }
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
