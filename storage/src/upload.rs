//! A multipart upload that takes the object in parts as they are produced, so a large
//! object (a backup) is never whole in memory, and is aborted if it is not completed.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::{Client, StorageError};

/// Smallest part S3 accepts (except the last).
pub const MIN_PART: usize = 5 * 1024 * 1024;

/// An upload in progress.
#[derive(Debug)]
pub struct Multipart {
    client: Client,
    bucket: String,
    key: String,
    id: String,
    parts: Vec<CompletedPart>,
    sent: u64,
}

impl Multipart {
    /// Starts an upload of `key`.
    pub async fn start(client: &Client, bucket: &str, key: &str) -> Result<Self, StorageError> {
        let out = client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| StorageError::call("CreateMultipartUpload", bucket, e))?;
        let id = out.upload_id().unwrap_or_default().to_owned();
        Ok(Self {
            client: client.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            id,
            parts: Vec::new(),
            sent: 0,
        })
    }

    /// Sends one part (at least [`MIN_PART`] bytes, except the last).
    pub async fn part(&mut self, body: Vec<u8>) -> Result<(), StorageError> {
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let len = body.len() as u64;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| StorageError::call("UploadPart", &self.bucket, e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
        self.sent += len;
        Ok(())
    }

    /// Completes the upload; returns the object's size.
    pub async fn complete(self) -> Result<u64, StorageError> {
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| StorageError::call("CompleteMultipartUpload", &self.bucket, e))?;
        Ok(self.sent)
    }

    /// Abandons the upload, so no partial object is left (best effort; the bucket's
    /// lifecycle rule also aborts uploads left incomplete for a day).
    pub async fn abort(self) {
        if let Err(e) = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .send()
            .await
        {
            tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), key = %self.key, "aborting a multipart upload failed; the lifecycle rule removes it");
        }
    }
}
