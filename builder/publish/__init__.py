"""Publishing a build: the storage protocol and its two stores, the live record, the
lease, the upload plan, and the local development server.

`storage` (the protocol and its errors), `folder` (a directory), `s3` (a bucket,
with the S3 conditional write), `target` (which store a target names), `record`
(the live record), `lease` (one publisher at a time), `plan` (what to upload, in
which order), `verify` (the documents to upload, re-verified), `audit` (does the
store still hold what the record says?), `upload` (the writes, batch by batch),
`report` (what a publish did), `publish` (the publish itself), `serve`
(`plugindex serve`).

May import: common. Signature checks come in as a function (`verify.DocumentVerifier`)
that the CLI passes: the client's own.
"""
