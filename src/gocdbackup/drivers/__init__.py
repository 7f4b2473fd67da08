"""L3: the only place fsspec, s3fs, gcsfs, psycopg, kubernetes and subprocess are used."""
