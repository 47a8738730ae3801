"""Chapter 12 (the speedrun): the checked exercises."""
from .core import Choice, ConvParams, Count, OutputSize, Runs, conv_params

_STEM_CONV = conv_params(1, 16, 4, bias=False)

EXERCISES = {
    "speedrun/stem-on-20": OutputSize(20, 4, stride=2, padding=1,
                                      what="the stem's output side for a 20 × 20 image"),
    "speedrun/stem-params": Count(
        "parameters of the stem: a 4 × 4 convolution from 1 to 16 channels without bias, and its BN",
        _STEM_CONV + 2 * 16,
        "k·k·c_in·c_out weights (no bias), plus a scale and a shift per channel for the batch norm",
        "4·4·1·16 = 256 weights and 2·16 = 32 BN parameters",
        mistakes={_STEM_CONV: "That is the convolution alone; add the batch norm's scale and shift per channel.",
                  conv_params(1, 16, 4) + 2 * 16: "This convolution has no bias: the BN after it has one.",
                  _STEM_CONV + 4 * 16: "BN's running mean and variance are buffers, not parameters: count only "
                                       "its scale and shift.",
                  conv_params(1, 16, 4): "No bias for this convolution, and add the batch norm's parameters."}),
    "speedrun/what-bf16-buys": Choice(
        "In the ablation, float32 instead of bfloat16 left the accuracy within the noise and made training "
        "about a third slower. What does bfloat16 buy here?",
        {"a": "accuracy: more bits for the weights",
         "b": "time: the same network trained faster, with accuracy the same within the noise",
         "c": "nothing: the differences are all noise",
         "d": "memory only: the time is the same"},
        answer="b",
        explain="The accuracy did not move beyond the noise; the time did, far beyond the seeds' spread. "
                "bfloat16 halves the bytes each number takes and the CPU's matrix units compute with it faster.",
        wrong={"a": "bfloat16 has fewer bits than float32 (8 for the mantissa instead of 24), not more, and the "
                    "accuracy did not change beyond the noise.",
               "c": "The accuracy's difference is noise; the time's is not: it is many times the seeds' spread.",
               "d": "The time is not the same: look at the row's training seconds."}),
    "speedrun/why-flip-tta": Choice(
        "Why may the recipe add the scores of the mirrored test image?",
        {"a": "because the network was trained on mirrored images too, and a mirrored garment is still the "
              "same garment, so both views are images the network knows, of the same class",
         "b": "because mirroring makes the test set larger, so the accuracy is measured more precisely",
         "c": "because Fashion-MNIST's test images are stored mirrored",
         "d": "because adding scores always raises the accuracy, whatever the extra views are"},
        answer="a",
        explain="Both views show the same class and look like the training images (the augmentation flipped "
                "them too); where the network hesitates, the two scores average some mistakes away.",
        wrong={"b": "Each test image is still counted once: the two views give one prediction, so the test set "
                    "is not larger and the standard error does not shrink.",
               "c": "The files are not mirrored; the network would have learnt them either way.",
               "d": "A view the network never saw in training, or one that changes the class (a mirrored "
                    "digit 2 or a letter), can lower the accuracy."}),
    "speedrun/one-bad-seed": Choice(
        "In the ablation's no-augment row one seed ended far below the other four. What can the row's mean "
        "tell you?",
        {"a": "that augmentation adds about a point of accuracy to every run",
         "b": "little about a typical run: the mean drop comes mostly from one seed; it hints that without "
              "augmentation the run is less reliable, which five seeds cannot show",
         "c": "that the seeds are broken and the row should be dropped",
         "d": "that augmentation makes training slower"},
        answer="b",
        explain="Four seeds are within a point of the recipe's, seed by seed, and one collapsed: a mean over "
                "five runs hides that. Look at the seeds, and at the spread, not only at the mean.",
        wrong={"a": "Four of the five runs without augmentation are within a point of the recipe's, seed by "
                    "seed: most of the mean's drop comes from one seed.",
               "c": "The seed is one draw of the run-to-run variation; dropping the runs you dislike is choosing "
                    "results, not measuring them.",
               "d": "The row's time is within the noise of the recipe's."}),
    "speedrun/beat-the-record": Runs("your recipe", accuracy=0.93, seconds=60.0, min_seeds=5),
}
