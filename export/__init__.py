"""cnnport.export: Keras -> ONNX with the model card inside and a parity gate.

Not implemented yet: this stage lands with the export issue.
"""
