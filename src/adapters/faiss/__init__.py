"""FAISS: the `VectorIndex` port (index), with the IVF layouts, rebuild and calibration it uses."""
