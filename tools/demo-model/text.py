"""Text-only chats that keep SmolLM2's own abilities while the adapters learn to read images: general-knowledge,
arithmetic and instruction prompts (none of them one of evaluate_text.py's 50 questions), answered by the package's
model itself. The language stage distils those answers (KL to the unadapted model's next-token distribution), so
the adapters may change what the model does with visual tokens but not what it says about text."""
import json
import random
from pathlib import Path

import torch

CAPITALS = ["Portugal", "Greece", "Norway", "Sweden", "Poland", "Ireland", "Austria", "Belgium", "Netherlands", "Denmark",
            "Finland", "Russia", "China", "India", "Australia", "Mexico", "Argentina", "Peru", "Kenya", "Turkey", "Thailand",
            "South Korea", "Vietnam", "Cuba", "Chile", "Hungary", "Switzerland", "Indonesia", "Morocco", "Iran"]
FACTS = ["What is the smallest planet in our solar system?", "What is the hottest planet in our solar system?",
         "How many planets are in our solar system?", "What is the largest animal on Earth?", "What is the fastest land animal?",
         "What is the largest desert in the world?", "What is the longest river in South America?",
         "What is the chemical symbol for iron?", "What is the chemical symbol for oxygen?", "What gas do humans breathe out?",
         "Who wrote the novel Pride and Prejudice?", "Who painted The Starry Night?", "Who discovered penicillin?",
         "Who was the first person to walk on the Moon?", "What is the hardest natural substance?", "How many sides does a triangle have?",
         "How many legs does an insect have?", "How many months are there in a year?", "How many minutes are there in an hour?",
         "What language is mainly spoken in Mexico?", "What is the currency of Japan?", "What do cows drink?",
         "What do caterpillars turn into?", "Which organ do humans use to breathe?", "What is the largest continent?",
         "What is the freezing point of water in degrees Fahrenheit?", "What is the main gas in the air we breathe?",
         "Which season comes after winter?", "What is the last month of the year?", "How many seconds are in a minute?",
         "What color are bananas when they are ripe?", "What is the opposite of big?", "What is the opposite of fast?",
         "What is the opposite of light?", "What is the plural of mouse?", "What is the past tense of run?",
         "Which animal says moo?", "What is frozen water called?", "What instrument has black and white keys?",
         "What is the capital city of the United States?", "What is a baby cat called?", "What is a baby dog called?"]
INSTRUCTIONS = ["Write one sentence about the ocean.", "Write a short poem about the moon.", "Give me three tips for staying healthy.",
                "Explain what a computer is in one sentence.", "List three colors of the rainbow.", "Name three animals that live in the sea.",
                "Describe a sunny day in one sentence.", "What should I bring to a picnic?", "Suggest a name for a pet goldfish.",
                "Write a greeting for a birthday card.", "Explain why we need sleep.", "Give me a synonym for 'big'.",
                "Give me an antonym for 'happy'.", "Translate 'good morning' into Spanish.", "Translate 'cat' into French.",
                "Translate 'water' into German.", "Write the word 'sun' backwards.", "Spell the word 'book' in capital letters.",
                "Name a vegetable that is green.", "Name a fruit that is red.", "Complete the sentence: An apple a day keeps the ...",
                "Answer with yes or no: Is the sun a star?", "Answer with yes or no: Do cats have wings?",
                "Answer with yes or no: Is ice cold?", "Tell me a fun fact about elephants.", "How do I boil an egg?",
                "What is the difference between a fruit and a vegetable?", "Summarize the story of Cinderella in two sentences.",
                "Hello! How are you today?", "What can you help me with?"]
ARITHMETIC = ["plus", "minus", "times"]
EVAL_QUESTIONS = Path(__file__).with_name("data") / "text-questions.jsonl"


def eval_questions():
    """evaluate_text.py's 50 questions: [{"question", "accept"}]."""
    return [json.loads(line) for line in EVAL_QUESTIONS.read_text().splitlines() if line.strip()]


def text_prompts(count, seed):
    """`count` distinct prompts, none of them one of evaluate_text.py's: every fixed one, then arithmetic."""
    held_out = {q["question"] for q in eval_questions()}
    fixed = [f"What is the capital of {c}?" for c in CAPITALS] + FACTS + INSTRUCTIONS
    assert not held_out.intersection(fixed), f"text prompts overlap evaluate_text.py's: {held_out.intersection(fixed)}"
    rng, prompts = random.Random(seed), dict.fromkeys(fixed)
    while len(prompts) < count:
        a, b = sorted((rng.randint(1, 20), rng.randint(1, 12)), reverse=True)
        prompt = f"What is {a} {rng.choice(ARITHMETIC)} {b}?"
        if prompt not in held_out:
            prompts[prompt] = None
    chosen = list(prompts)[:count]
    rng.shuffle(chosen)  # so that any tail held back mixes the kinds
    return chosen


@torch.no_grad()
def teacher_chats(model, tok, chat, count, seed, work, max_new=48):
    """[(ids, labels)] of each prompt answered greedily by the unadapted model (call with the adapters off), in the
    inference format (SmolLM2's template with its default system prompt); cached in work/text-chats-<count>-<seed>.json."""
    cache_file = Path(work) / f"text-chats-{count}-{seed}.json"
    if cache_file.exists():
        return [tuple(row) for row in json.loads(cache_file.read_text())]
    prompts = text_prompts(count, seed)
    rows = []
    for prompt in prompts:
        ids, _ = chat.encode([(prompt, "")], system=True, with_answers=False, image=False)
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), max_new_tokens=max_new,
                             do_sample=False, eos_token_id=chat.end_id, pad_token_id=chat.end_id)[0, len(ids):].tolist()
        rows.append((ids + out, [-100] * len(ids) + out))
    cache_file.write_text(json.dumps(rows))
    print(f"text chats: {len(rows)} prompts answered by the unadapted model, e.g. {prompts[0]!r} -> "
          f"{tok.decode([t for t in rows[0][1] if t >= 0])!r}", flush=True)
    return rows
