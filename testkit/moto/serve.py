"""moto's S3 server, as `moto_server`, with the XML root element of each response named
as AWS's S3 model names it.

moto serializes several S3 results under `<OperationNameResponse>` (for example
`<GetBucketVersioningResponse>`), where S3 and its model use `<VersioningConfiguration>`.
botocore ignores the root element's name; the AWS SDK for Rust checks it and refuses
the response. This launcher renames the root of those results, from the table below,
and changes nothing else: requests, state and every other byte come from moto.
"""

import sys

from moto.core import serialize
from moto.server import main

# Operation -> root element in AWS's S3 model (its output shapes' xmlName).
ROOTS = {
    "GetBucketVersioning": "VersioningConfiguration",
    "GetBucketLifecycleConfiguration": "LifecycleConfiguration",
    "ListObjects": "ListBucketResult",
    "ListObjectsV2": "ListBucketResult",
    "ListObjectVersions": "ListVersionsResult",
    "ListMultipartUploads": "ListMultipartUploadsResult",
    "ListParts": "ListPartsResult",
    "ListBuckets": "ListAllMyBucketsResult",
    "CreateMultipartUpload": "InitiateMultipartUploadResult",
    "CompleteMultipartUpload": "CompleteMultipartUploadResult",
    "DeleteObjects": "DeleteResult",
}

_original = serialize.S3Serializer._serialized_result_to_response


def _renamed(self, resp, result, shape, serialized_result):
    resp = _original(self, resp, result, shape, serialized_result)
    name = self.operation_model.name
    root = ROOTS.get(name)
    body = resp.get("body")
    if root and body:
        text = body.decode() if isinstance(body, bytes) else body
        text = text.replace(f"<{name}Response", f"<{root}", 1)
        text = text.replace(f"</{name}Response>", f"</{root}>", 1)
        resp["body"] = text.encode() if isinstance(body, bytes) else text
    return resp


serialize.S3Serializer._serialized_result_to_response = _renamed

if __name__ == "__main__":
    sys.exit(main())
