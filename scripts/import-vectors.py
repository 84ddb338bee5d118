"""Prints the imported-hash test vectors of tests/api/import.rs, made by the
reference implementations (Python's bcrypt, hashlib, argon2-cffi; Django's
format by hand as Django writes it). Run: pip install bcrypt argon2-cffi."""
import base64, hashlib, bcrypt, argon2

pw = b"correct horse battery staple"
b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
salt = b"0123456789abcdef"
print("bcrypt  ", bcrypt.hashpw(pw, bcrypt.gensalt(rounds=5, prefix=b"2b")).decode())
print("bcrypt2a", bcrypt.hashpw(pw, bcrypt.gensalt(rounds=5, prefix=b"2a")).decode())
for d in ("sha256", "sha512"):
    dk = hashlib.pbkdf2_hmac(d, pw, salt, 1000)
    print(f"pbkdf2-{d}", f"$pbkdf2-{d}$i=1000${b64(salt)}${b64(dk)}")
dk = hashlib.pbkdf2_hmac("sha256", pw, b"djangosalt", 1000)
print("django  ", f"pbkdf2_sha256$1000$djangosalt${base64.b64encode(dk).decode()}")
dk = hashlib.scrypt(pw, salt=salt, n=1024, r=8, p=1, dklen=32)
print("scrypt  ", f"$scrypt$ln=10,r=8,p=1${b64(salt)}${b64(dk)}")
print("argon2i ", argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=argon2.Type.I).hash(pw))
print("argon2id", argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=argon2.Type.ID).hash(pw))
