"""One module per `cnnport` command, named after it. Each parses its arguments, calls the
library that does the work (cnnport.train, cnnport.export, cnnport.explain, the webcam
app, the benchmark library) and prints. Importing a module registers its command; the
CLI imports every module of this package."""
