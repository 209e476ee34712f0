"""Knowledge bases: loaders, chunking, segmentation, stores and hybrid search."""
