"""cnnport.train: data sets, registered CNN architectures, augmentation and training.

Not implemented yet: this stage lands with the training issue. Until then
`cnnport train` does not exist; models come from any Keras or ONNX source.
"""
