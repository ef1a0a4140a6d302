"""PyTorch's own features for the model input vidcls used, against the rows `vidcls embed` wrote.

usage: embed_parity.py MODEL.pt INPUT.npy EMBED.npy VIEWS_PER_ROW

INPUT.npy is what `vidcls predict --dump-inputs` wrote (views x C x T x H x W); EMBED.npy is
`vidcls embed`'s (rows x D). Each row must be the mean of its views' pooled features, computed
here twice: through the graph's `features` method, and from its layers directly (relu of the
stem, the residual layers, a global mean over T, H, W), which also checks that the classifier
reads those features (fc(features) == forward). Prints one JSON object.
"""

import json
import sys

import numpy as np
import torch


def main() -> None:
    model_path, input_path, embed_path, per_row = sys.argv[1:5]
    per_row = int(per_row)
    m = torch.jit.load(model_path, map_location="cpu").eval()
    x = torch.from_numpy(np.load(input_path))
    ours = np.load(embed_path)
    with torch.no_grad():
        feats = m.features(x)
        by_layers = m.layers(torch.relu(m.stem_bn(m.stem(x)))).mean(dim=(2, 3, 4))
        logits = m(x)
        head = m.fc(feats)  # dropout is the identity in eval mode
    rows = feats.reshape(-1, per_row, feats.shape[1]).mean(dim=1).numpy()
    print(
        json.dumps(
            {
                "embed_shape": list(ours.shape),
                "embed_dtype": str(ours.dtype),
                "torch_shape": list(rows.shape),
                "max_abs_diff": float(np.abs(rows - ours).max()) if rows.shape == ours.shape else None,
                "features_vs_layers": float((feats - by_layers).abs().max()),
                "head_vs_forward": float((head - logits).abs().max()),
            }
        )
    )


if __name__ == "__main__":
    main()
