"""Input pipelines: robust image decoding and one `tf.data` pipeline per data layout."""
