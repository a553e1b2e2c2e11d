"""`vsr batch`: every video and frame folder of a tree, upscaled into a mirrored tree, resumably."""
