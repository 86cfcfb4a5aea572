"""Audio edges and signal work: files, devices, resampling, VAD, echo cancellation."""
