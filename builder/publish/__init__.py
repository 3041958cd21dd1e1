"""Publishing a build: the storage protocol (folder, S3), the live record, the lease,
the upload plan, and the local development server.

May import: common.
"""
