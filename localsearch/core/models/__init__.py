"""Model files: conversion to GGUF, quantization, and the offline default model."""
