"""`vsr bench`: models scored on reference clips as the papers score them, with their speed and memory."""
