"""Operations and small blocks the models share (flow warping and the like), kept out of the model files."""
