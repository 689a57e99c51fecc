"""Limits of a staff photo, the same at the hub's roster import and in the agent that downloads it: a
picture for a 240-pixel frame needs neither megabytes nor tens of thousands of pixels a side, and a
bigger one is an attack on the memory of whoever decodes it."""

MAX_PHOTO_BYTES = 2 * 1024 * 1024
MAX_PHOTO_SIDE_PX = 4096
