// The object that owns distgan's precompiled LibTorch header (see DistganTargets.cmake).
