"""Load a checkpoint in Google's original format as named Keras layers."""

import numpy as np

import kbert

# A tiny checkpoint in Google's format, with Google's variable names (hidden
# size 4, 2 layers, 15 word pieces).  A real one, such as uncased_L-12_H-768_A-12/,
# loads the same way.
model = kbert.load_checkpoint("../shared/fixtures/keras_bert_test_checkpoint")
report = model.load_report
print(f"{len(report.assigned)} variables assigned, {len(report.unused_heads)} of heads not built, "
      f"{len(report.unused_expected)} optimizer slots, {len(report.unexpected)} unexpected")
print(report.assigned[0].name, "->", report.assigned[0].slot)
print([layer.name for layer in model.layers][2:6])

tokenizer = kbert.Tokenizer.from_vocab_file(model.vocab_file)
token_ids, segment_ids = tokenizer.encode("all work and no play", max_len=8)
print(tokenizer.tokenize("all work and no play"), token_ids)
print(model.predict([np.array([token_ids]), np.array([segment_ids])], verbose=0).shape)
