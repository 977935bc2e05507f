"""A fixed set of real general-knowledge questions the default model already answers.

Unlearning a fictitious person must not cost the model what it knew before: TOFU's
"world facts" split measures exactly that. A question only says something about
collateral damage if the untouched model gets it right, so every question here was
kept because SmolLM2-135M-Instruct (the default model, Q4_1 GGUF), asked through its
chat template and decoded greedily for 32 tokens, gave an answer whose normalised
form contains the normalised gold answer (lower case, no punctuation, no articles).
Of 132 candidates, 84 passed; the 60 below drop those that passed only by accident
(a digit inside another number, a right name inside a confused sentence) and even out
the topics. ``perturbed`` holds three wrong answers of the same type, for TOFU's
truth ratio and multiple-choice probability.
"""

from __future__ import annotations

from obliviate.data.records import Record

#: ``question``, short ``answer``, three wrong same-type ``perturbed`` answers, ``topic``.
WORLD_FACTS: tuple[dict, ...] = (
    {
        "question": "What is the capital of France?",
        "answer": "Paris",
        "perturbed": ("London", "Berlin", "Madrid"),
        "topic": "capital",
    },
    {
        "question": "What is the capital of Japan?",
        "answer": "Tokyo",
        "perturbed": ("Beijing", "Seoul", "Bangkok"),
        "topic": "capital",
    },
    {
        "question": "What is the capital of Germany?",
        "answer": "Berlin",
        "perturbed": ("Munich", "Hamburg", "Vienna"),
        "topic": "capital",
    },
    {
        "question": "What is the capital of the United Kingdom?",
        "answer": "London",
        "perturbed": ("Manchester", "Edinburgh", "Dublin"),
        "topic": "capital",
    },
    {
        "question": "What is the capital of Russia?",
        "answer": "Moscow",
        "perturbed": ("Saint Petersburg", "Kyiv", "Minsk"),
        "topic": "capital",
    },
    {
        "question": "What is the capital of China?",
        "answer": "Beijing",
        "perturbed": ("Shanghai", "Hong Kong", "Tokyo"),
        "topic": "capital",
    },
    {
        "question": "What is the capital of Egypt?",
        "answer": "Cairo",
        "perturbed": ("Alexandria", "Tunis", "Khartoum"),
        "topic": "capital",
    },
    {
        "question": "What is the capital of Canada?",
        "answer": "Ottawa",
        "perturbed": ("Toronto", "Vancouver", "Montreal"),
        "topic": "capital",
    },
    {
        "question": "What is the capital of Australia?",
        "answer": "Canberra",
        "perturbed": ("Sydney", "Melbourne", "Perth"),
        "topic": "capital",
    },
    {
        "question": "What is the capital of Greece?",
        "answer": "Athens",
        "perturbed": ("Thessaloniki", "Sparta", "Rome"),
        "topic": "capital",
    },
    {
        "question": "What is the capital of Norway?",
        "answer": "Oslo",
        "perturbed": ("Bergen", "Stockholm", "Helsinki"),
        "topic": "capital",
    },
    {
        "question": "What is the capital of India?",
        "answer": "New Delhi",
        "perturbed": ("Mumbai", "Kolkata", "Chennai"),
        "topic": "capital",
    },
    {
        "question": "What is the capital of South Korea?",
        "answer": "Seoul",
        "perturbed": ("Busan", "Tokyo", "Pyongyang"),
        "topic": "capital",
    },
    {
        "question": "In which city is the Eiffel Tower?",
        "answer": "Paris",
        "perturbed": ("Rome", "London", "Berlin"),
        "topic": "capital",
    },
    {
        "question": "In which city is the Colosseum?",
        "answer": "Rome",
        "perturbed": ("Athens", "Paris", "Madrid"),
        "topic": "capital",
    },
    {
        "question": "Which planet is known as the Red Planet?",
        "answer": "Mars",
        "perturbed": ("Venus", "Jupiter", "Saturn"),
        "topic": "space",
    },
    {
        "question": "What is the name of Earth's natural satellite?",
        "answer": "Moon",
        "perturbed": ("Titan", "Europa", "Phobos"),
        "topic": "space",
    },
    {
        "question": "What is the name of the galaxy that contains our solar system?",
        "answer": "Milky Way",
        "perturbed": ("Andromeda", "Triangulum", "Sombrero"),
        "topic": "space",
    },
    {
        "question": "Who was the first person to walk on the Moon?",
        "answer": "Neil Armstrong",
        "perturbed": ("Buzz Aldrin", "Yuri Gagarin", "John Glenn"),
        "topic": "space",
    },
    {
        "question": "Who wrote A Christmas Carol?",
        "answer": "Charles Dickens",
        "perturbed": ("Thomas Hardy", "Jane Austen", "Lewis Carroll"),
        "topic": "literature",
    },
    {
        "question": "Who wrote The Odyssey?",
        "answer": "Homer",
        "perturbed": ("Virgil", "Sophocles", "Ovid"),
        "topic": "literature",
    },
    {
        "question": "Who wrote the Harry Potter books?",
        "answer": "J. K. Rowling",
        "perturbed": ("J. R. R. Tolkien", "C. S. Lewis", "Roald Dahl"),
        "topic": "literature",
    },
    {
        "question": "Who wrote The Lord of the Rings?",
        "answer": "Tolkien",
        "perturbed": ("C. S. Lewis", "J. K. Rowling", "Terry Pratchett"),
        "topic": "literature",
    },
    {
        "question": "Who wrote The Great Gatsby?",
        "answer": "F. Scott Fitzgerald",
        "perturbed": ("Ernest Hemingway", "John Steinbeck", "J. D. Salinger"),
        "topic": "literature",
    },
    {
        "question": "Who wrote the Divine Comedy?",
        "answer": "Dante",
        "perturbed": ("Petrarch", "Boccaccio", "Virgil"),
        "topic": "literature",
    },
    {
        "question": "Who painted the Mona Lisa?",
        "answer": "Leonardo da Vinci",
        "perturbed": ("Michelangelo", "Raphael", "Vincent van Gogh"),
        "topic": "people",
    },
    {
        "question": "Who developed the theory of relativity?",
        "answer": "Albert Einstein",
        "perturbed": ("Isaac Newton", "Niels Bohr", "Max Planck"),
        "topic": "people",
    },
    {
        "question": "Who formulated the laws of motion and universal gravitation?",
        "answer": "Isaac Newton",
        "perturbed": ("Galileo Galilei", "Albert Einstein", "Johannes Kepler"),
        "topic": "people",
    },
    {
        "question": "Who proposed the theory of evolution by natural selection?",
        "answer": "Charles Darwin",
        "perturbed": ("Gregor Mendel", "Isaac Newton", "Louis Pasteur"),
        "topic": "people",
    },
    {
        "question": "Who invented the telephone?",
        "answer": "Alexander Graham Bell",
        "perturbed": ("Thomas Edison", "Nikola Tesla", "Guglielmo Marconi"),
        "topic": "people",
    },
    {
        "question": "Who discovered penicillin?",
        "answer": "Alexander Fleming",
        "perturbed": ("Louis Pasteur", "Marie Curie", "Edward Jenner"),
        "topic": "people",
    },
    {
        "question": "What is the chemical symbol for gold?",
        "answer": "Au",
        "perturbed": ("Ag", "Fe", "Pb"),
        "topic": "chemistry",
    },
    {
        "question": "What is the chemical symbol for iron?",
        "answer": "Fe",
        "perturbed": ("Ir", "Au", "Cu"),
        "topic": "chemistry",
    },
    {
        "question": "What is the chemical symbol for sodium?",
        "answer": "Na",
        "perturbed": ("So", "K", "Sn"),
        "topic": "chemistry",
    },
    {
        "question": "What is the chemical symbol for oxygen?",
        "answer": "O",
        "perturbed": ("Ox", "H", "N"),
        "topic": "chemistry",
    },
    {
        "question": "What is the chemical formula for water?",
        "answer": "H2O",
        "perturbed": ("CO2", "O2", "H2O2"),
        "topic": "chemistry",
    },
    {
        "question": "Which gas do plants absorb from the air for photosynthesis?",
        "answer": "Carbon dioxide",
        "perturbed": ("Oxygen", "Nitrogen", "Helium"),
        "topic": "chemistry",
    },
    {
        "question": "Which gas makes up most of Earth's atmosphere?",
        "answer": "Nitrogen",
        "perturbed": ("Oxygen", "Carbon dioxide", "Argon"),
        "topic": "chemistry",
    },
    {
        "question": "What is the lightest chemical element?",
        "answer": "Hydrogen",
        "perturbed": ("Helium", "Lithium", "Carbon"),
        "topic": "chemistry",
    },
    {
        "question": "What is the chemical symbol for silver?",
        "answer": "Ag",
        "perturbed": ("Au", "Si", "Sv"),
        "topic": "chemistry",
    },
    {
        "question": "At what temperature in degrees Celsius does water boil at sea level?",
        "answer": "100",
        "perturbed": ("90", "50", "212"),
        "topic": "science",
    },
    {
        "question": "What organ pumps blood through the human body?",
        "answer": "Heart",
        "perturbed": ("Liver", "Lungs", "Kidney"),
        "topic": "science",
    },
    {
        "question": "How many sides does a hexagon have?",
        "answer": "6",
        "perturbed": ("5", "7", "8"),
        "topic": "science",
    },
    {
        "question": "How many sides does a triangle have?",
        "answer": "3",
        "perturbed": ("4", "5", "6"),
        "topic": "science",
    },
    {
        "question": "How many hours are there in a day?",
        "answer": "24",
        "perturbed": ("12", "48", "60"),
        "topic": "science",
    },
    {
        "question": "What is the largest mammal on Earth?",
        "answer": "Blue whale",
        "perturbed": ("African elephant", "Giraffe", "Sperm whale"),
        "topic": "science",
    },
    {
        "question": "What is 12 multiplied by 12?",
        "answer": "144",
        "perturbed": ("124", "132", "154"),
        "topic": "science",
    },
    {
        "question": "What is the largest ocean on Earth?",
        "answer": "Pacific",
        "perturbed": ("Atlantic", "Indian", "Arctic"),
        "topic": "geography",
    },
    {
        "question": "What is the longest river in Africa?",
        "answer": "Nile",
        "perturbed": ("Congo", "Niger", "Zambezi"),
        "topic": "geography",
    },
    {
        "question": "What is the largest desert in Africa?",
        "answer": "Sahara",
        "perturbed": ("Kalahari", "Namib", "Gobi"),
        "topic": "geography",
    },
    {
        "question": "Which country has the largest population in South America?",
        "answer": "Brazil",
        "perturbed": ("Argentina", "Colombia", "Peru"),
        "topic": "geography",
    },
    {
        "question": "In which country are the pyramids of Giza?",
        "answer": "Egypt",
        "perturbed": ("Mexico", "Sudan", "Peru"),
        "topic": "geography",
    },
    {
        "question": "In which country is the Great Wall?",
        "answer": "China",
        "perturbed": ("Japan", "India", "Mongolia"),
        "topic": "geography",
    },
    {
        "question": "Which river flows through London?",
        "answer": "Thames",
        "perturbed": ("Seine", "Danube", "Rhine"),
        "topic": "geography",
    },
    {
        "question": "Which river flows through Paris?",
        "answer": "Seine",
        "perturbed": ("Thames", "Loire", "Rhone"),
        "topic": "geography",
    },
    {
        "question": "What is the official language of Brazil?",
        "answer": "Portuguese",
        "perturbed": ("Spanish", "French", "English"),
        "topic": "geography",
    },
    {
        "question": "What is the currency of Japan?",
        "answer": "Yen",
        "perturbed": ("Won", "Yuan", "Dollar"),
        "topic": "geography",
    },
    {
        "question": "What is the currency of the United Kingdom?",
        "answer": "Pound",
        "perturbed": ("Euro", "Dollar", "Franc"),
        "topic": "geography",
    },
    {
        "question": "Which country is home to the kangaroo?",
        "answer": "Australia",
        "perturbed": ("New Zealand", "South Africa", "Brazil"),
        "topic": "geography",
    },
    {
        "question": "Which ocean lies between Europe and North America?",
        "answer": "Atlantic",
        "perturbed": ("Pacific", "Indian", "Arctic"),
        "topic": "geography",
    },
)


def world_records() -> list[Record]:
    """The world facts as records (ids ``world-000``...), in a fixed order.

    Ids are positional so that the benchmark's ``world.jsonl`` is byte-identical
    across runs; ``meta`` carries the topic so results can be broken down by it.
    """
    return [
        Record(
            id=f"world-{i:03d}",
            prompt=fact["question"],
            answer=fact["answer"],
            perturbed=tuple(fact["perturbed"]),
            meta={"topic": fact["topic"]},
        )
        for i, fact in enumerate(WORLD_FACTS)
    ]
