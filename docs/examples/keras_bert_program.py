"""A keras-bert program; the one changed line is the import."""

import numpy as np

import kbert.keras_bert as keras_bert  # was: import keras_bert

model_path = "../shared/fixtures/keras_bert_test_checkpoint"
paths = keras_bert.get_checkpoint_paths(model_path)
model = keras_bert.load_trained_model_from_checkpoint(paths.config, paths.checkpoint, training=True, seq_len=10)
print([layer.name for layer in model.layers if layer.name.startswith(("MLM", "NSP"))])

token_dict = keras_bert.load_vocabulary(paths.vocab)
tokenizer = keras_bert.Tokenizer(token_dict)
print(tokenizer.tokenize("all work", "and no play"))
indices, segments = tokenizer.encode("all work", "and no play", max_len=10)
print(indices, segments)

masked = np.zeros((1, 10))
mlm, nsp = model.predict([np.array([indices]), np.array([segments]), masked], verbose=0)
print(mlm.shape, nsp.shape)

texts = ["all work and no play", "a dull boy"]
vectors = keras_bert.extract_embeddings(model_path, texts, poolings=[keras_bert.POOL_NSP, keras_bert.POOL_MAX])
print([vector.shape for vector in vectors])
